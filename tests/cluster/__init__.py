"""Tests of several database nodes and their failures: Galera and replication clusters."""
