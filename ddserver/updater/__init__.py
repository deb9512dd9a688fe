"""The dyndns2 updater: a pure protocol core and a thin Bottle shell."""
