"""Search for many boards at once: a multi-target pruning policy and a weight-sharing supernet.

``common`` holds what every search method shares (a target with its budget, a per-target choice);
``policy`` is the AMC-style multi-target agent, ``nas`` the supernet architecture search,
``run`` the `edgebuild search` driver that builds and verifies every choice per board.
"""
