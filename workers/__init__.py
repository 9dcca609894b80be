"""Background work: the Dramatiq broker set-up and, from the dispatch issue on, the actors."""
