"""Look inside a model: analyses that return plain data (DataFrames, numpy arrays, small dataclasses).

One module per analysis — `tokens`, `next_token`, `attention`, `embeddings`, `perplexity`, `experiments`,
`walkthrough` — and `charts`, which draws plotly figures from that data and nothing else. The CLI
(`llmp explore`) and the web app are front ends over these functions.
"""
