"""gemini-gateway: serve Google Gemini through the OpenAI API."""

__version__ = "0.1.0"
