"""Consentry's API tier as a function: AWS Lambda behind API Gateway (`consentry[lambda]`).

The handler is `consentry.serverless.aws_lambda.handler`; docs/deployment.md ("Serverless API")
says how it is deployed and why the relay and the integrator stay long-running workers.
"""
