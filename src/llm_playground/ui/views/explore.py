"""Explore: one tab per analysis of `llm_playground.explore`, drawn with `explore.charts`' plotly figures.

Each tab is a form: an analysis runs only when its button is pressed, and its result is kept in the
session, so changing a view (a layer, a head) redraws without running the model again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
import streamlit as st

from llm_playground.errors import InputError
from llm_playground.explore import attention, charts, embeddings, experiments, next_token, perplexity, tokens
from llm_playground.explore.common import encode
from llm_playground.explore.walkthrough import walkthrough
from llm_playground.generate import SamplingParams
from llm_playground.generate.prompt import build_prompt
from llm_playground.ui import common

SAMPLE = "The cat sat on the mat because it was tired."


def _ids(model: Any, text: str, chat: bool) -> list[int]:
    if not text.strip():  # checked here: the library's message for an empty prompt speaks of the CLI's `-`
        raise InputError("the text is empty", "type some text to look at")
    return encode(model.tokenizer, build_prompt(model.tokenizer, text, raw=not chat))


def _run(key: str, compute: Callable[[], Any]) -> None:
    """Run an analysis; its result (or nothing, after an error shown with its fix) is kept under `key`."""
    st.session_state.pop(key, None)
    with common.errors_shown(), st.spinner("Working…"):
        st.session_state[key] = compute()


def _chart(figure: Any) -> None:
    st.plotly_chart(figure, width="stretch")


def tokens_tab() -> None:
    with st.form("tokens_form"):
        text = st.text_area("Text", "Hello world! Tokenizers split text into pieces.", key="tokens_text")
        other = st.text_input("Compare with another tokenizer (optional)", key="tokens_compare",
                              placeholder="a model name, .gguf file, model directory or tokenizer.json")
        submitted = st.form_submit_button("Tokenize")
    if submitted:
        def compute() -> Any:
            spec = common.local_spec()
            first = tokens.load_tokenizer(spec)
            if not other.strip():
                return tokens.analyze(first, text)
            second = other.strip()
            names = [spec, second] if second != spec else [spec, f"{second} (again)"]
            return tokens.compare(text, {names[0]: first, names[1]: tokens.load_tokenizer(second)})
        _run("tokens_result", compute)
    result = st.session_state.get("tokens_result")
    if isinstance(result, tokens.TokenAnalysis):
        s = result.summary
        columns = st.columns(4)
        for column, (label, value) in zip(columns, [("tokens", s.tokens), ("words", s.words), (
                "tokens per word", s.tokens_per_word), ("characters per token", s.characters_per_token)], strict=True):
            column.metric(label, value)
        st.dataframe(result.table, hide_index=True, width="stretch")
        _chart(charts.token_lengths(result))
    elif result is not None:
        st.dataframe(result.summary, hide_index=True, width="stretch")
        _chart(charts.tokenizer_comparison(result))


def next_token_tab() -> None:
    with st.form("next_form"):
        text = st.text_area("Text", "The capital of France is", key="next_text")
        top = st.slider("How many tokens to list", 1, 50, 10, key="next_top")
        temperature = st.slider("Temperature", 0.0, 2.0, 1.0, 0.05, key="next_temperature")
        chat = st.checkbox("Wrap in the chat template", key="next_chat")
        submitted = st.form_submit_button("Predict")
    if submitted:
        def compute() -> Any:
            model = common.model()
            return next_token.next_token(model, _ids(model, text, chat), top, temperature)
        _run("next_result", compute)
    result = st.session_state.get("next_result")
    if result is not None:
        st.markdown(f"Entropy **{result.entropy_bits:.3f} bits**; the top {len(result.table)} hold "
                    f"**{result.top_mass:.1%}** of the probability.")
        _chart(charts.next_token(result))
        st.dataframe(result.table, hide_index=True, width="stretch")


def attention_tab() -> None:
    with st.form("attention_form"):
        text = st.text_area("Text", SAMPLE, key="attention_text")
        chat = st.checkbox("Wrap in the chat template", key="attention_chat")
        submitted = st.form_submit_button("Compute every layer and head")
    if submitted:
        def compute() -> Any:
            model = common.model()
            return attention.attention(model, _ids(model, text, chat))
        _run("attention_result", compute)
    maps = st.session_state.get("attention_result")
    if maps is None:
        return
    st.caption(f"{maps.num_layers} layers × {maps.num_heads} heads × {len(maps.ids)}×{len(maps.ids)} weights "
               "from one forward pass")
    left, middle, right = st.columns(3)
    layer = left.slider("Layer", 0, maps.num_layers - 1, 0, key="attention_layer")
    view = middle.radio("Show", ["every head", "mean of the heads", "one head"], key="attention_view",
                        horizontal=True)
    if view == "one head":
        head = right.slider("Head", 0, maps.num_heads - 1, 0, key="attention_head")
        _chart(charts.attention_head(maps, layer, head))
        matrix = maps.head(layer, head)
    else:
        _chart((charts.attention_grid if view == "every head" else charts.attention_mean)(maps, layer))
        matrix = maps.mean(layer)
    st.dataframe(attention.top_attended(maps, matrix), hide_index=True, width="stretch")


def embeddings_tab() -> None:
    with st.form("embeddings_form"):
        source = st.radio("Project", ["a text's hidden states", "words' input embeddings"], key="embeddings_source",
                          horizontal=True)
        text = st.text_area("Text (for hidden states)", "The king and the queen walked to the old castle by the sea.",
                            key="embeddings_text")
        words = st.text_input("Words (comma-separated, for input embeddings)",
                              "king,queen,man,woman,Paris,France,Berlin,Germany,apple,banana", key="embeddings_words")
        layer = st.number_input("Layer (0 = embeddings, -1 = last)", -100, 100, -1, key="embeddings_layer")
        methods = st.multiselect("Methods", list(embeddings.METHODS), ["pca", "tsne"], key="embeddings_methods",
                                 format_func=embeddings.NAMES.__getitem__,
                                 help="UMAP compiles with numba on its first use in a process (10–30 s)")
        submitted = st.form_submit_button("Project")
    if submitted:
        def compute() -> Any:
            if not methods:
                raise InputError("no projection method chosen", "pick PCA, t-SNE or UMAP")
            model = common.model()
            if source.startswith("words"):
                vectors = embeddings.word_embeddings(model, [w for w in words.split(",") if w.strip()])
                matrix, labels, title = vectors.vectors, vectors.words, "Input embeddings of words"
            else:
                states = embeddings.hidden_states(model, _ids(model, text, False))
                matrix, labels = states.layer(int(layer)), states.tokens
                title = f"Hidden states after layer {int(layer) % (states.num_layers + 1)} of {states.num_layers}"
            return title, embeddings.projections(matrix, labels, methods)
        _run("embeddings_result", compute)
    result = st.session_state.get("embeddings_result")
    if result is not None:
        title, points = result
        _chart(charts.embeddings(points, title))
        with st.expander("Coordinates"):
            st.dataframe(points, hide_index=True, width="stretch")


def perplexity_tab() -> None:
    with st.form("perplexity_form"):
        text = st.text_area("Text", "The sun rose slowly over the quiet village.", key="perplexity_text")
        examples = st.checkbox("Compare a natural, a shuffled and a repetitive text instead", key="perplexity_examples")
        submitted = st.form_submit_button("Score")
    if submitted:
        def compute() -> Any:
            model = common.model()
            if examples:
                return perplexity.compare(model, perplexity.example_texts())
            return perplexity.perplexity(model, encode(model.tokenizer, text))
        _run("perplexity_result", compute)
    result = st.session_state.get("perplexity_result")
    if isinstance(result, pd.DataFrame):
        st.dataframe(result, hide_index=True, width="stretch")
        _chart(charts.perplexity_comparison(result))
    elif result is not None:
        st.markdown(f"Perplexity **{result.perplexity:.2f}** = exp(mean NLL {result.mean_nll:.3f} nats); "
                    f"{result.bits_per_token:.2f} bits per token over {result.tokens} tokens.")
        _chart(charts.surprisal(result))
        st.dataframe(result.table, hide_index=True, width="stretch")


def sweep_tab() -> None:
    with st.form("sweep_form"):
        prompt = st.text_area("Prompt", "Once upon a time", key="sweep_prompt")
        kind = st.selectbox("Sweep", experiments.KINDS, key="sweep_kind",
                            help="temperature 0.2–1.5; top-k against top-p; repetition penalty 1.0/1.2/1.5")
        left, middle, right = st.columns(3)
        samples = left.number_input("Samples per setting", 1, 20, 3, key="sweep_samples")
        length = middle.number_input("Tokens per sample", 1, 200, 20, key="sweep_tokens")
        seed = right.number_input("Seed", 0, 2**31, 0, key="sweep_seed")
        submitted = st.form_submit_button("Run the sweep")
    if submitted:
        def compute() -> Any:
            model = common.model()
            temperature = {"temperature": 1.0, "sampling": 1.0, "repetition": 0.0}[kind]
            base = SamplingParams.create(n=int(samples), max_new_tokens=int(length), seed=int(seed),
                                         temperature=temperature)
            return experiments.sweep(model, _ids(model, prompt, False), kind, base)
        _run("sweep_result", compute)
    result = st.session_state.get("sweep_result")
    if result is not None:
        _chart(charts.sweep(result))
        st.dataframe(result.summary, hide_index=True, width="stretch")
        st.dataframe(result.outputs, hide_index=True, width="stretch")


def walkthrough_tab() -> None:
    with st.form("walkthrough_form"):
        prompt = st.text_area("Prompt", "The capital of France is", key="walk_prompt")
        left, middle, right = st.columns(3)
        temperature = left.slider("Temperature", 0.0, 2.0, 0.7, 0.05, key="walk_temperature")
        top_k = middle.number_input("Top-k (0 = off)", 0, 1000, 0, key="walk_top_k")
        top_p = right.slider("Top-p", 0.05, 1.0, 1.0, 0.05, key="walk_top_p")
        seed = left.number_input("Seed", 0, 2**31, 0, key="walk_seed")
        tokens_to_generate = middle.number_input("Tokens to generate", 1, 100, 10, key="walk_tokens")
        layers = right.checkbox("Every layer's hidden state (one more pass)", key="walk_layers")
        submitted = st.form_submit_button("Walk through")
    if submitted:
        def compute() -> Any:
            model = common.model()
            params = SamplingParams.create(temperature=temperature, top_k=int(top_k), top_p=top_p, seed=int(seed),
                                           max_new_tokens=int(tokens_to_generate))
            return walkthrough(model, prompt, _ids(model, prompt, False), params, layers=layers)
        _run("walk_result", compute)
    result = st.session_state.get("walk_result")
    if result is not None:
        st.table(pd.DataFrame(result.steps(), columns=["step", "what happens"]))
        _chart(charts.walkthrough(result))


st.title("Explore")
st.caption("Look inside the picked model. Texts are fed raw (a continuation) unless wrapped in the chat template.")
TABS = {"Tokens": tokens_tab, "Next token": next_token_tab, "Attention": attention_tab,
        "Embeddings": embeddings_tab, "Perplexity": perplexity_tab, "Sweep": sweep_tab, "Walkthrough": walkthrough_tab}
for tab, draw in zip(st.tabs(list(TABS)), TABS.values(), strict=True):
    with tab:
        draw()
