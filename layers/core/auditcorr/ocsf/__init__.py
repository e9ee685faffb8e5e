"""OCSF 1.6.0 output: the lake's tables as Datastore Activity (6005), Authentication (3002) and
Detection Finding (2004) events, nested Arrow structs shaped as the classes, written in the
Amazon Security Lake custom-source layout (docs/ocsf.md)."""
