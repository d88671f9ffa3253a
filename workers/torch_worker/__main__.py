"""`python -m workers.torch_worker ...` (see workers/torch_worker/config.py for the flags)."""

import sys

from workers.torch_worker.main import main

sys.exit(main())
