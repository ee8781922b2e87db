"""GPO from its pieces: the gradient (``feedback``), momentum over prompts and gradients
(``momentum``), the update rule (``update``), the step-size schedule (``schedule``), and
the method that composes them (``method.GPO``)."""
