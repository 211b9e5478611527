"""An offline imitation of the Pulumi engine and of Azure: what the plan and the tests run the real program on.
See README.md in this folder for what it imitates and which SDK internals it touches."""
