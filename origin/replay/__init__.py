"""After the broadcast: the whole replay as one .m4a, built from the published segments."""
