from partnersync.cli import main

raise SystemExit(main())
