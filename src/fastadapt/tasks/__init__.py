"""Task material built from read tables: cleaning, splits, k-shot sets, episodes, unlabelled pool.

Everything here follows benchmarks/PROTOCOL.md sections 0-4, so that every method meets the same
rows, splits, support sets and episodes.
"""
