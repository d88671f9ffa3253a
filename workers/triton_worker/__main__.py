"""`python -m workers.triton_worker ...` (see workers/triton_worker/config.py for the flags)."""

import sys

from workers.triton_worker.main import main

sys.exit(main())
