"""What runs on the network: the HTTP app (and later gRPC). Translation only: all
scoring logic lives in `reward_server`."""
