"""Telling other services what happened: the store's events as CloudEvents, published to a
broker by `orders publish` and served as a feed by the API."""
