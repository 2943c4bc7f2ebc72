"""The prompt layer: the template language (parser and its inverse renderer), PVP specs and their
JSON Schemas, encoding PVP x examples into model inputs (with each source's truncation rules),
and LM-BFF demonstrations."""
