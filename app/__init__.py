"""LoFTR Live: the demo application (sources, inference, rendering, GUI and headless output)."""
