# `python -m partnersync` is the program's name on the command line (workers and the
# supervisor spawn it): the entry point only, the engine itself never imports cli.
from cli import main

raise SystemExit(main())
