"""What the platform team runs: onboarding, approvals and offboarding, the offline plan, the stacks a change
touches, the fleet runner, reconciliation and the verify step. See README.md in this folder."""
