import sys

from versacodec.interfaces.cli import main

sys.exit(main())
