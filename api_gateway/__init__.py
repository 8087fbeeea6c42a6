"""The HTTP gateway: validates goals, stores them and enqueues their planning."""
