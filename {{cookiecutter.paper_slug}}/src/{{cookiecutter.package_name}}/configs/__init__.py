# Makes configs/ an importable package, so Hydra finds it through the installed
# package (console scripts) as well as next to the source file (python -m).
