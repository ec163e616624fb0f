"""The Starlette app that receives partner webhooks. Knows HTTP, not partners' REST APIs."""
