"""The student side of the study: teacher data (synth), training (train) and the whole loop (distill)."""
