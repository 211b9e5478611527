"""Programs that run on the VMs, standard-library Python only: the web VMs' software and the test VM's probe."""
