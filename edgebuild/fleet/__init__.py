"""Fleet deployment: assign models to boards (ant colony and baseline schedulers) and build them."""
