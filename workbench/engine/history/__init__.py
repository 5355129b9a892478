"""The history: stored runs, the recorder that saves them as they stream,
exports and word diffs."""
