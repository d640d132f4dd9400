"""twinhost's CrossGuard policy pack: the rules (`rules.py`) and their policy objects (`policies.py`)."""
