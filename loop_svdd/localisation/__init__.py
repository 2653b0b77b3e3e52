"""Where in the loop: injected defects for measuring time-resolved scores, and time scores as text."""
