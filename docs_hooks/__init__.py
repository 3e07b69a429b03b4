"""Build-time helpers of the documentation site (mkdocs hooks and a griffe extension); see mkdocs.yml."""
