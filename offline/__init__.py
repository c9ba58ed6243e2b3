"""The Pulumi program run offline, under the SDK's mocks (mockrun.py), and the plan that judges
what it declares against the policy rules (plan.py). Needs the `[pulumi]` extra."""
