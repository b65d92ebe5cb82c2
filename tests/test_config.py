import pytest

from qa.config import Config, load_config
from qa.types import ConfigError


def test_defaults_file_then_environment(tmp_path):
    path = tmp_path / "qa.toml"
    path.write_text('index_dir = "from-file"\ntop_k = 7\nclean_patterns = ["x"]\n')
    config = load_config(path, env={"QA_TOP_K": "9"})
    assert config.index_dir == "from-file" and config.top_k == 9 and config.clean_patterns == ("x",)
    assert config.model == Config().model


def test_bad_settings_are_explained(tmp_path):
    with pytest.raises(ConfigError, match="top_k"):
        load_config(tmp_path / "none.toml", env={"QA_TOP_K": "many"})
    path = tmp_path / "qa.toml"
    path.write_text("colour = 'blue'\n")
    with pytest.raises(ConfigError, match="Unknown setting"):
        load_config(path, env={})
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(None, env={"QA_CONFIG": str(tmp_path / "missing.toml")})


def test_overrides_ignore_none():
    assert Config().with_overrides(index_dir=None, top_k=3).top_k == 3


def test_the_server_listens_on_loopback_unless_told_otherwise():
    assert Config().host == "127.0.0.1"
    assert load_config(env={"QA_HOST": "0.0.0.0"}).host == "0.0.0.0"
