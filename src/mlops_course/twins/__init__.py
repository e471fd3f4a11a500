"""Local twins of cloud services: real servers on 127.0.0.1 that stand in for the cloud."""
