"""`python -m sftmix_ray.cli`: the same command as `sftmix`."""

from . import main

main()
