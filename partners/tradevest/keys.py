"""The Redis keys only the Tradevest package writes (the engine's are in partnersync/keys.py)."""

from partnersync.keys import PREFIX

CUSTOMERS = PREFIX + "tradevest:customers"  # set: customers whose transactions are swept
