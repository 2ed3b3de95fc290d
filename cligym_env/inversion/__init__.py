"""Environment inversion: break a healthy gold environment, keep what flips tests, verify the repair."""
