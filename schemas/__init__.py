"""msgspec Structs for every wire format and the lifecycle state machines. Pure data, no I/O."""
