"""Model access: the Anthropic client, retries and prompts."""
