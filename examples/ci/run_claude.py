#!/usr/bin/env python3
"""The same job from Python: run `claude ARGS` through claudewrap with CI tags,
then print its usage as JSON on stderr; the exit status is claude's.

    python examples/ci/run_claude.py -p "Review this diff" --output-format json
"""

import json
import os
import sys

from claudewrap.api import run_claude

tags = {"ci": os.environ.get("CI_NAME", "ci"), "job": os.environ.get("CI_JOB", "claude")}
outcome = run_claude(sys.argv[1:], project=os.environ.get("CI_PROJECT"), tags=tags)
usage = outcome.usage
print(json.dumps({"session": outcome.session, "exit_status": outcome.exit_status,
                  "cost_usd": round(usage.cost_usd, 6), "tokens": usage.tokens,
                  "cost_estimated_usd": round(usage.cost_estimated_usd, 6)}), file=sys.stderr)
sys.exit(outcome.exit_status)
