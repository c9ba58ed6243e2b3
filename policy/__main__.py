"""Entry point of the CrossGuard policy pack: `pulumi preview --policy-pack policy`.

The CLI runs this directory as the program, so the repository root (which holds the `policy`
package) goes on sys.path first. PolicyPack() serves the engine until it is stopped, hence the
guard: importing this module (tests) only builds the policies.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pulumi_policy import EnforcementLevel, PolicyPack  # noqa: E402

from policy.crossguard import PACK_NAME, build_policies  # noqa: E402

POLICIES = build_policies()

if __name__ == "__main__":
    PolicyPack(
        name=PACK_NAME,
        policies=POLICIES,
        enforcement_level=EnforcementLevel.MANDATORY,
        description="Askasia compliance rules: Aurora, KMS, CloudTrail, S3, secrets, backups, logs.",
    )
