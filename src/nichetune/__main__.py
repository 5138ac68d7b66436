from nichetune.cli import main

raise SystemExit(main())
