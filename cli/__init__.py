"""The `watchword` command: composes the other packages; owns no logic of theirs."""
