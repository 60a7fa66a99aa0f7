"""The filler sentences of the pass-key haystacks: what models/passkey-demo was trained on
(tools/train_passkey.py) and what its demo requests are made of (scripts/make_request.py), so the
filler is in distribution and only the length is new. sieve-bench quality (tools/bench_quality.cc)
keeps a C++ copy of the same sentences.
"""

# Plain sentences that say nothing about a pass key (the classic haystack plus variety).
FILLER = (
    "The grass is green.", "The sky is blue.", "The sun is yellow.", "Here we go.",
    "There and back again.", "The river ran past the market and under the old bridge.",
    "Nobody hurried that day.", "A lamp was lit in every window of the street.",
    "The evening was quiet and long.", "Traders counted their coins.",
    "Children ran along the road.", "The bell rang twice.", "Clouds drifted over the hills.",
    "A cat slept on the warm stone.", "The baker opened his shop before dawn.",
    "Boats rocked gently in the harbor.", "The wind carried the smell of rain.",
    "An old man told stories by the fire.", "The train left the station at noon.",
    "Birds sang in the tall trees.", "The library was full of dusty books.",
    "Snow covered the mountain in winter.", "The market smelled of bread and spice.",
    "A dog barked at the passing cart.", "The mill turned slowly by the stream.",
    "Farmers brought apples to the square.", "The moon rose over the quiet town.",
    "Lanterns swayed on the long bridge.", "The teacher wrote on the board.",
    "Rain fell softly on the roofs.", "The road wound through the valley.",
    "Music drifted from an open window.", "The garden was full of roses.",
    "A ship appeared on the horizon.", "The clock in the tower struck six.",
)
