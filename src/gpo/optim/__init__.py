"""The optimizers and their pieces: trajectory, feedback, momentum, schedule, update."""
