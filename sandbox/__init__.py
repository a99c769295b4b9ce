"""Local emulators of the Salesforce, Asana, Slack and OpenAI HTTP APIs."""
