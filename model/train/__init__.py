"""Training our own LoFTR weights on synthetic homography pairs."""
