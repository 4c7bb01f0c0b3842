"""Ansible plugins intagent ships with its package (loaded by Ansible from this folder, never imported by
intagent itself)."""
