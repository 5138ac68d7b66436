"""An optional mirror of the registry in an MLflow model registry (the ``mlflow`` extra, ``mlflow-skinny``).

When a registry is opened with ``mlflow_uri``, every registration also creates the MLflow model version
(source: the version's folder; tags: the nichetune version, kind, format, manifest sha256), and every alias
move sets the same MLflow alias. nichetune's own catalogue stays the record (MLflow keeps no alias history);
MLflow's telemetry is switched off before it is imported.
"""

from __future__ import annotations

import os

from ..errors import NichetuneError


class MlflowMirror:
    def __init__(self, uri: str) -> None:
        os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
        os.environ.setdefault("DO_NOT_TRACK", "true")
        try:
            from mlflow import MlflowClient
        except ImportError:
            raise NichetuneError("the MLflow mirror needs mlflow-skinny",
                                 hint="pip install 'nichetune[mlflow]'") from None
        self.uri = uri
        self.client = MlflowClient(tracking_uri=uri, registry_uri=uri)

    def version(self, name: str, version: int) -> str | None:
        """The MLflow version that mirrors ``name@version``, by its tag."""
        for mv in self.client.search_model_versions(f"name='{name}'"):
            if mv.tags.get("nichetune_version") == str(version):
                return mv.version
        return None

    def register(self, row: dict) -> str:
        from mlflow.exceptions import MlflowException

        try:
            self.client.get_registered_model(row["name"])
        except MlflowException:
            self.client.create_registered_model(row["name"], description="mirrored from a nichetune registry")
        mv = self.client.create_model_version(
            row["name"], source=row["path"], description=row.get("note") or None,
            tags={"nichetune_version": str(row["version"]), "kind": row["kind"], "format": row["format"],
                  "manifest_sha256": row["manifest_sha256"], "source": row["source"]})
        return mv.version

    def set_alias(self, name: str, alias: str, version: int) -> None:
        mirrored = self.version(name, version)
        if mirrored is None:
            raise NichetuneError(f"{name}@{version} is not in the MLflow mirror at {self.uri}",
                                 hint="register versions while the mirror is on, so both registries hold them")
        self.client.set_registered_model_alias(name, alias, mirrored)
