import sys

from unet_bench.cli import main

sys.exit(main())
