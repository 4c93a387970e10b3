"""``ctr bench peers``: the service beside Ray Serve, BentoML and LitServe (one app module per peer,
the shared model they serve, the process tree they run as, and the runner); needs the ``bench`` extra."""
