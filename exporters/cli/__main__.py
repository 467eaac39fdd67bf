"""``python -m otel_downstream.exporters.cli``: the same command as ``otel-downstream``."""

from otel_downstream.exporters.cli.main import main

raise SystemExit(main())
