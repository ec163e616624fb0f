"""The Redis keys only the Tradevest package writes (the engine's are in partnersync/keys.py)."""

from partnersync.keys import PREFIX

ACTIVITY = PREFIX + "tradevest:customer-activity"  # zset customer -> ms of its last entity change
ROTATION = PREFIX + "tradevest:sweep-rotation"  # rank where the dormant customers' slice resumes
